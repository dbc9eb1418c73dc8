"""The order stream simulator: realistic CRM orders for demos and benchmarks."""
