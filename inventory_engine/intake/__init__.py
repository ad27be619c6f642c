"""Intake: marketplace events and storefront calls turned into ledger operations."""
