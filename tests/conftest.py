"""Shared test settings: hypothesis profiles (derandomized ``ci`` when CI is set) and torch threads."""
import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The tests use small problems, where one thread is several times faster than two on a 2-core
# machine (thread start-up dominates, and oversubscription is costly on a loaded box).
torch.set_num_threads(1)
