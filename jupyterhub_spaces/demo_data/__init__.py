"""Small datasets of the demo catalog (see :mod:`jupyterhub_spaces.demo`).

``daily_sales.csv`` becomes a table in the source database, ``daily_weather.csv``
too, and ``stores.csv`` is a ``files`` asset copied under ``SpacesSettings.data_root``.
The numbers are made up but hang together: sales follow the weekday, the store's
size and the weather of its city.
"""
