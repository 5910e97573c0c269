"""The objective's default weights (`objective.py` says what each part measures), apart
from the objective's numpy: for those that only name or show them (the coordinator's
settings, the dashboard's words)."""

DEFAULT_WEIGHTS = {"distance": 1.0, "return": 0.5, "risk": 0.5, "diversification": 0.1, "cost": 10.0}
