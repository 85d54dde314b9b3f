"""Statistics nobody has to take on faith: the registry's signed monthly report.

* :mod:`.tally`: counting a month's figures from audit events (the registry
  counts them, the oversight monitor recounts them).
* :mod:`.suppression`: cells under 10 hidden, with complementary suppression.
* :mod:`.report`: the signed document (compact JWS, ``typ: clearance-statistics+jwt``).
* :mod:`.charts`: its charts, as SVG (written here) and PNG (drawn with Pillow).
"""
