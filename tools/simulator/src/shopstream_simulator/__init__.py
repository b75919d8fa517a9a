"""The simulator: a seeded social-commerce world played through the services' real interfaces.

`simulate(SimConfig(...))` runs one day in-process and returns its `Summary`; `shopstream-sim`
is the command line around it.
"""

from shopstream_simulator.config import SimConfig, Targets
from shopstream_simulator.engine import ServicesUnreachable, simulate
from shopstream_simulator.ledger import Summary
from shopstream_simulator.world import WorldSize

__all__ = ["ServicesUnreachable", "SimConfig", "Summary", "Targets", "WorldSize", "simulate"]
