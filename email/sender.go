package email

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	mail "github.com/wneessen/go-mail"
)

// Sender delivers rendered messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through one SMTP server, configured by a URL:
// smtp://[user:password@]host:port (STARTTLS when offered) or
// smtps://… (implicit TLS). Options: ?tls=none disables TLS entirely.
type SMTP struct {
	From string // e.g. "Fulfillment <no-reply@fulfillment.example>"
	// Domain names the Message-ID right-hand side.
	Domain string
	host   string
	opts   []mail.Option
}

// NewSMTP parses the server URL.
func NewSMTP(rawURL, from, domain string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	port, _ := strconv.Atoi(u.Port())
	s := &SMTP{From: from, Domain: domain, host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		if port == 0 {
			port = 587
		}
		policy := mail.TLSOpportunistic
		if u.Query().Get("tls") == "none" {
			policy = mail.NoTLS
		}
		s.opts = append(s.opts, mail.WithTLSPolicy(policy), mail.WithPort(port))
	case "smtps":
		if port == 0 {
			port = 465
		}
		s.opts = append(s.opts, mail.WithSSL(), mail.WithPort(port))
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if s.host == "" {
		return nil, fmt.Errorf("SMTP_URL: no host")
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		s.opts = append(s.opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	return s, nil
}

// MessageID is the stable Message-ID of an outbox row: a retry sends the same
// one, so mail clients show a redelivered message once.
func MessageID(outboxID, domain string) string {
	return outboxID + "@" + domain
}

// Send delivers one message with a text and an HTML part.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("from %q: %w", s.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("to %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(MessageID(m.ID, s.Domain))
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send %s: %w", m.ID, err)
	}
	return nil
}

// Undeliverable tells whether the server refused the recipient for good
// (550–553 to RCPT TO: no such mailbox, not allowed): retrying cannot help.
// Every other failure, including a refused login or a full mailbox, is
// worth retrying; a misconfigured server must not drop the queue.
func Undeliverable(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) || se.Reason != mail.ErrSMTPRcptTo {
		return false
	}
	code := se.ErrorCode()
	return code >= 550 && code <= 553
}
