"""The graph walker: consumer inputs of the pruned network and outputs of the original, cached at graph cuts."""

from .execute import Plan, execute, live_at, make_plan
from .walker import GraphWalker, Visit, group_visit

__all__ = ["GraphWalker", "Plan", "Visit", "execute", "group_visit", "live_at", "make_plan"]
