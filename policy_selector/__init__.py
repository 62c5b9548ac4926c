"""policy_selector package."""
