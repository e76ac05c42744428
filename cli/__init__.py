"""The ``pmt`` command line (installed as ``pmtoolkit.cli``): parses options, calls the
pmtoolkit API, formats output. No science lives here."""
