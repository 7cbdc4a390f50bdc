"""genesys-enrich: put CRM data in front of Genesys Cloud agents.

Plugin authors import from :mod:`genesys_enrich.plugin`, the whole contract, and test with
:mod:`genesys_enrich.testing`. The other modules are the core's own: hosts run it
(:mod:`genesys_enrich.hosts`), and nothing else in it is promised to stay.
"""
