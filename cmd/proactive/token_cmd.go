package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/cli"
)

var tokenUsage = helpText("token")

func tokenCmd(ctx context.Context, e env) error {
	if len(e.args) == 0 {
		io.WriteString(e.stderr, tokenUsage)
		return errors.New("token: want a subcommand: create, list or revoke")
	}
	sub, rest := e.args[0], e.args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		return cli.Help(e.stdout, tokenUsage)
	case "create", "list", "revoke":
	default:
		io.WriteString(e.stderr, tokenUsage)
		return fmt.Errorf("token: unknown subcommand %q: want create, list or revoke", sub)
	}
	fs, load := configFlags("token "+sub, e)
	fs.Usage = func() {
		io.WriteString(fs.Output(), tokenUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	var role, name, tech string
	if sub == "create" {
		fs.StringVar(&role, "role", "", "the token's `role`: admin, dispatcher or technician")
		fs.StringVar(&name, "name", "", "a `name` saying who or what holds the token")
		fs.StringVar(&tech, "technician", "", "the technician `ID` a technician token acts for")
	}
	if err := e.parse(fs, rest); err != nil {
		return err
	}
	switch {
	case sub == "revoke" && fs.NArg() != 1:
		fs.Usage()
		return fmt.Errorf("token revoke takes one token ID, got %d arguments", fs.NArg())
	case sub != "revoke" && fs.NArg() != 0:
		fs.Usage()
		return fmt.Errorf("token %s takes no arguments, got %q", sub, fs.Args())
	case sub == "create" && role == "":
		return errors.New("token create needs --role: admin, dispatcher or technician")
	case sub == "create" && !devices.Role(role).Valid():
		return fmt.Errorf("token create: unknown role %q: want admin, dispatcher or technician", role)
	case sub == "create" && name == "":
		return errors.New("token create needs --name, saying who or what holds the token")
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	store, err := devices.Open(ctx, cfg.DB.Reveal())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	tokens := devices.NewTokens(store, devices.TokenOptions{})

	switch sub {
	case "create":
		tok, plain, err := tokens.Create(ctx, name, devices.Role(role), tech)
		if err != nil {
			return tokenError("create token", err)
		}
		fmt.Fprintf(e.stderr, "Created %s token %s (%q). It is shown only this once, below: store it now.\n", tok.Role, tok.ID, tok.Name)
		_, err = fmt.Fprintln(e.stdout, plain)
		return err
	case "list":
		toks, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		return printTokens(e.stdout, toks)
	default:
		tok, err := tokens.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return tokenError("revoke token", err)
		}
		_, err = fmt.Fprintf(e.stdout, "token %s (%q) revoked at %s\n", tok.ID, tok.Name, tok.RevokedAt.Format(time.RFC3339))
		return err
	}
}

// tokenError shows a user-facing failure by its message alone.
func tokenError(op string, err error) error {
	if proactive.ErrorCode(err) != proactive.EInternal {
		return fmt.Errorf("%s: %s", op, proactive.ErrorMessage(err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

func printTokens(w io.Writer, toks []devices.Token) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tTECHNICIAN\tCREATED\tLAST USED\tREVOKED")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, t := range toks {
		tech := t.TechnicianID
		if tech == "" {
			tech = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, tech, when(t.CreatedAt), when(t.LastUsedAt), when(t.RevokedAt))
	}
	return tw.Flush()
}
