"""Load balancing: the unit keeps every managed charger under the main fuse, per phase."""
