"""What every widget's browser side shares: the parts of their ES modules (``dom.js``, ``view.js``)
and the one function that joins them in front of a widget's own module. Imports nothing of the lab."""
