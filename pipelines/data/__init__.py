"""Reading and checking inputs: demand, item master, network, run config, the generated demo."""
