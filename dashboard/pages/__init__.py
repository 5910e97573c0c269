"""Every page of the dashboard; importing this package registers them."""

from . import controls, orders, overview, plans, portfolio, system, universe

__all__ = ["controls", "orders", "overview", "plans", "portfolio", "system", "universe"]
