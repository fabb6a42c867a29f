"""On-demand ride planning: the domain and flat Problem (model), exact feasibility and insertions
(insertion), live plans (dispatcher over drive_times and visits), re-optimisation (search, optimize)
and Cordeau's dial-a-ride benchmark (darp)."""
