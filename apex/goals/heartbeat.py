"""How often whoever runs a goal beats, and how long its lease lives without a beat.

Kept apart from :mod:`apex.goals.lease` (which needs the store) so that command-line defaults can
be read without importing the database stack.
"""

DEFAULT_LEASE_TTL_S = 20.0
"""How long a lease stays live without a heartbeat."""
DEFAULT_HEARTBEAT_S = 5.0
"""How often a holder renews its lease (a quarter of the time to live: three beats may fail)."""
