"""chain_node package."""
