"""The replay: the system's own nodes over history, driven by a market clock, and a report
of how its money did against simple alternatives (`edge replay`, `make replay`)."""
