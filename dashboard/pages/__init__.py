"""Every page of the dashboard; importing this package registers them."""

from . import controls, orders, overview, plans, portfolio, replay, system, universe

__all__ = ["controls", "orders", "overview", "plans", "portfolio", "replay", "system", "universe"]
