package confsync

import "strings"

// SystemdUnit returns a unit for the continuous sync that replaces the guide's oneshot
// xroad-sync.service and its timer. One pass runs before X-Road's services start (as the
// guide's oneshot did, not fatal when the primary is down), then the worker keeps running.
// bin is the lbagent executable's absolute path.
//
// It runs as root, limited to the capabilities a copy needs: the staging area is a sibling
// of the target (/etc/.xroad.lbagent-sync, in /etc, which xroad cannot write), and owners
// are given by name as on the primary. It has no private /tmp: the guide's pause flag
// /var/tmp/xroad/sync-disabled must be the one the operator touches.
func SystemdUnit(bin string) string {
	return strings.ReplaceAll(`# /etc/systemd/system/lbagent-sync.service
# Replaces xroad-sync.service + xroad-sync.timer of the X-Road load-balancer guide (5.2.1).
# Not needed where "lbagent run" runs on this secondary: the daemon has the same worker.
[Unit]
Description=X-Road configuration sync from the primary (lbagent sync)
Documentation=file:///usr/share/doc/lbkit/sync.md
After=network-online.target
Wants=network-online.target
Before=xroad-proxy.service xroad-signer.service xroad-confclient.service xroad-proxy-ui-api.service

[Service]
Type=simple
# The first pass before X-Road starts ("-": a primary that is down does not block the boot).
ExecStartPre=-@BIN@ sync --once
ExecStart=@BIN@ sync
Restart=always
RestartSec=5
# Root, with only what a copy needs: owners by name (xroad, root) as on the primary, and
# the staging area beside /etc/xroad. Journal, lock and racy set: /var/lib/lbagent/sync.
User=root
CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH
NoNewPrivileges=yes
StateDirectory=lbagent/sync
StateDirectoryMode=0700
# Everything read-only but what a pass writes: /etc (the target /etc/xroad and its staging
# directory beside it, /etc/.xroad.lbagent-sync), the pass log and known_hosts.
ProtectSystem=strict
ReadWritePaths=/etc -/var/log/xroad -/var/lib/xroad/.ssh
ProtectHome=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
# No PrivateTmp: "touch /var/tmp/xroad/sync-disabled" (guide 7.2.1) must pause this service.
PrivateTmp=no

[Install]
WantedBy=multi-user.target
WantedBy=xroad-proxy.service
`, "@BIN@", bin)
}

// LogrotateSnippet returns the logrotate configuration for the pass log (the guide's 5.3).
// The log is opened for every write, so no copytruncate is needed.
func LogrotateSnippet(logFile string) string {
	if logFile == "" {
		logFile = DefaultLogFile
	}
	return `# /etc/logrotate.d/lbagent-sync
` + logFile + ` {
        daily
        rotate 7
        missingok
        notifempty
        compress
        delaycompress
        su xroad xroad
        nocreate
}
`
}
