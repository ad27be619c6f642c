"""RQ worker side of inventory-engine: job functions and worker settings (the sync-path issue)."""
