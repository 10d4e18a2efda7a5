"""The pod deployment: each service its own process on one machine (`easel up | down |
status | logs`).

plan.py says which processes run, in which order, on which ports and with which environment;
pidfiles.py records them; supervisor.py starts, waits for and stops them; handoff.py runs
`up` in the watchdog, which stays and restarts what exits (watchdog.py, restarts.py);
state.py reads how they are doing; table.py and logs.py show it.
"""
