"""The seed playbook: where optimization starts."""

SEED_PLAYBOOK = """\
You play Crafter, a 2-D survival game seen from above. Collect materials, craft tools,
stay alive, and unlock as many of the 22 achievements as you can before the episode ends.

Rules, read top to bottom at every step; the first rule whose condition holds and that
can act now decides the action (see the cookbook README for the grammar):
- collect wood
- explore
"""
