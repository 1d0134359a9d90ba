"""Pure FITS: header scanning, HDU geometry, keyword values, the section planner, the heap.

Nothing in this package makes a request: functions take bytes, headers or a read
callable and return layouts, plans and arrays.
"""
