"""Operator tasks: `invoke --list`. Only composes the collections in ibkr_ops.tasks."""

from invoke.collection import Collection

from ibkr_ops.tasks import demo, deploy, hosts, migrate, sandbox, screen, sim, verify

ns = Collection()
for t in (deploy.render, hosts.install, hosts.status, hosts.logs, hosts.restart,
          hosts.health_check, hosts.pre_restart_check, hosts.notify, verify.verify,
          migrate.migrate, migrate.go_live, screen.screenshot, screen.vnc_session, demo.demo):
    ns.add_task(t)
ns.add_collection(sandbox.ns, "sandbox")
ns.add_collection(sim.ns, "sim")
ns.configure({"run": {"echo": False}})
