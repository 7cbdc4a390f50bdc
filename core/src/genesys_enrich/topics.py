"""The Genesys Cloud topics an event may carry in its ``detail-type``.

Settings name them (``[pipeline] topics``) and the event parser matches them, so they live apart
from both.
"""

CUSTOMER_START = "v2.detail.events.conversation.{id}.customer.start"
"""A customer joined a conversation: the default, and the seed's only topic."""
ACD_START = "v2.detail.events.conversation.{id}.acd.start"
"""The conversation entered a queue."""
USER_START = "v2.detail.events.conversation.{id}.user.start"
"""An agent joined the conversation."""
