"""Search area: look-alikes of an item and search by photo (selectors, services, API, page).

Other areas use nothing of it; its pages and routes are mounted through ``urls``.
"""
