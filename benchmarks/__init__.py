"""``nox -s bench``: cloudfits side by side with astropy+fsspec and astrocut."""
