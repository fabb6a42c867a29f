"""Dial-a-ride planning: instances, exact route feasibility, (later) insertion and optimisation."""
