"""Marketplace simulators: real HTTP servers on loopback that behave as the marketplaces do."""
