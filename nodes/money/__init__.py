"""Money as the domain sees it: the broker's fee schedule and currency conversion. Pure:
the trading, portfolio and opportunity nodes and the planner's search share them."""
