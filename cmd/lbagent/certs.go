package main

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/xroad-lb/lbkit/db/certs"
)

// certFlags are the options shared by "certs ca" and "certs node".
type certFlags struct {
	out     string
	force   bool
	keyType string
	days    int
	owner   string
	org     string
}

func (f *certFlags) register(cmd *cobra.Command, outHelp string) {
	cmd.Flags().StringVar(&f.out, "out", "", outHelp)
	cmd.Flags().BoolVar(&f.force, "force", false, "overwrite existing files (never done without it)")
	cmd.Flags().StringVar(&f.keyType, "key-type", string(certs.ECDSAP256), "key algorithm: ecdsa-p256 (FIPS-approved, default), ecdsa-p384 or rsa-3072")
	cmd.Flags().IntVar(&f.days, "days", 7300, "validity in days (the guide's 7300 = 20 years)")
	cmd.Flags().StringVar(&f.owner, "owner", "", `give the files to this OS user, e.g. "postgres" (PostgreSQL reads a key only when it owns it)`)
	cmd.Flags().StringVar(&f.org, "org", "cluster", "organization (O) in the subject names")
}

func (f *certFlags) options() (certs.Options, error) {
	kt, err := certs.ParseKeyType(f.keyType)
	if err != nil {
		return certs.Options{}, fmt.Errorf("--key-type: %w", err)
	}
	if f.days <= 0 {
		return certs.Options{}, fmt.Errorf("--days %d: want a positive number of days", f.days)
	}
	o := certs.Options{KeyType: kt, Validity: time.Duration(f.days) * 24 * time.Hour, Organization: f.org, Force: f.force}
	if f.owner != "" {
		u, err := user.Lookup(f.owner)
		if err != nil {
			return certs.Options{}, fmt.Errorf("--owner %q: %w", f.owner, err)
		}
		o.Chown = true
		o.UID, _ = strconv.Atoi(u.Uid)
		o.GID, _ = strconv.Atoi(u.Gid)
	}
	return o, nil
}

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create the CA and node certificates for PostgreSQL certificate authentication",
		Long: `Create the TLS files that the serverconf PostgreSQL instances use (guide chapter 4.1).

  lbagent certs ca --out ./pki                           ca.crt and ca.key (keep ca.key safe, off the nodes)
  lbagent certs node --ca-dir ./pki --name replica1      ./pki/replica1/{server.crt,server.key,ca.crt}

Copy each node's directory to /etc/xroad/postgresql on that node, owned by postgres
(or use --owner postgres when generating on the node itself). The node name is the
certificate's CN; on secondaries it is also the replication user on the primary.
Keys are written 0400 and certificates 0600; existing files are never overwritten without --force.`,
	}
	cmd.AddCommand(newCertsCACmd(), newCertsNodeCmd())
	return cmd
}

func newCertsCACmd() *cobra.Command {
	var f certFlags
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create the cluster's database CA: ca.crt and ca.key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			out := f.out
			if out == "" {
				out = "."
			}
			c, k, err := certs.WriteCA(out, o)
			if err != nil {
				return fmt.Errorf("certs ca: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nwrote %s (keep it safe; it is not needed on the nodes)\n", c, k)
			return nil
		},
	}
	f.register(cmd, "directory for ca.crt and ca.key (default: the current directory)")
	return cmd
}

func newCertsNodeCmd() *cobra.Command {
	var f certFlags
	var name, caDir string
	cmd := &cobra.Command{
		Use:   "node --name <nodename>",
		Short: "Create a node's key and certificate (CN = node name = its replication user)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageError(errors.New("certs node: --name is required (the node name, e.g. replica1)"))
			}
			if err := certs.CheckNodeName(name); err != nil {
				return usageError(fmt.Errorf("certs node: %w", err))
			}
			o, err := f.options()
			if err != nil {
				return err
			}
			out := f.out
			if out == "" {
				out = filepath.Join(caDir, name)
			}
			files, err := certs.WriteNode(caDir, out, name, o)
			if err != nil {
				return fmt.Errorf("certs node %s: %w", name, err)
			}
			for _, p := range files {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
			}
			return nil
		},
	}
	f.register(cmd, "directory for server.crt, server.key and ca.crt (default: <ca-dir>/<name>)")
	cmd.Flags().StringVar(&name, "name", "", "node name: the certificate's CN and, on a secondary, its replication user")
	cmd.Flags().StringVar(&caDir, "ca-dir", ".", "directory holding ca.crt and ca.key")
	return cmd
}
