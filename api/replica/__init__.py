"""The HTTP side of an API replica (`officegw api`): README "API replicas"."""
