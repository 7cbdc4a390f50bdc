"""Hosts turn their input into events and outcomes into their own currency (exit codes, Lambda
responses); the pipeline knows nothing of them."""
