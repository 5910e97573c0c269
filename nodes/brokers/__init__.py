"""Broker access shared by the nodes that need it: the Tradernet API (universe's candles,
portfolio and trading) and, with issue 5, the paper broker."""
