"""Generated from proto/clearance/v1 by proto/generate.py; do not edit."""
