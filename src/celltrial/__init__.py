"""celltrial: an open platform for running and analysing CAR-T cell therapy trials.

Layers import downward only: ``cli``/``web`` -> ``report`` -> ``stats``/``kinetics``/``design``
-> ``derive`` -> ``store``/``clinical`` -> ``protocols``. Heavy libraries (JAX, matplotlib,
dask) are imported lazily, where they are used.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
