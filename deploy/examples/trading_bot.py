"""A minimal ib_async bot: connect to the local Gateway, print the accounts, stay connected.

One connect attempt per start: if the Gateway is not ready the bot exits non-zero and
systemd's Restart= tries again. With `invoke install --bot-unit trading-bot` it is started
only once the Gateway's API answers, so the first attempt is the one that connects.
"""

from ib_async import IB

ib = IB()
ib.connect("127.0.0.1", 4002, clientId=1, timeout=20)
print("connected; accounts:", ", ".join(ib.managedAccounts()), flush=True)
ib.run()  # serve events until systemd stops the bot
