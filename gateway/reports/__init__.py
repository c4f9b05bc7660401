"""Workplace reports computed from the store: utilisation, energy, comfort, service."""
