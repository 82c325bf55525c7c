package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results counted by hotdesk_mail_sent_total.
const (
	ResultSent    = "sent"    // the server accepted the message
	ResultRetry   = "retry"   // an attempt failed temporarily; it is tried again
	ResultFailed  = "failed"  // given up: permanent refusal or retries used up
	ResultDropped = "dropped" // the queue was full, or the outbox stopped first
	ResultInvalid = "invalid" // not sendable (bad recipient address)
)

// Deps are the outbox's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Done, if set, is called with each message's final result (tests).
	Done func(m Message, result string)
}

// Outbox queues messages and sends them, one at a time, from Run.
type Outbox struct {
	cfg   Config
	from  *mail.Address
	tls   *tls.Config
	tpl   templates
	log   *slog.Logger
	now   func() time.Time
	done  func(Message, string)
	q     chan Message
	sent  *prometheus.CounterVec
	queue prometheus.Gauge
}

// New returns an outbox for cfg, which must be enabled and valid.
func New(cfg Config, d Deps) (*Outbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("mail: config: host is empty (mail is off)")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	tpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	f := promauto.With(d.Registerer)
	o := &Outbox{cfg: cfg, from: from, tls: tc, tpl: tpl, log: d.Logger.With("component", "mail"), now: d.Now,
		done: d.Done, q: make(chan Message, cfg.QueueSize),
		sent: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_mail_sent_total",
			Help: "E-mail messages by kind and result (sent, retry, failed, dropped, invalid)."}, []string{"kind", "result"}),
		queue: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_mail_queue",
			Help: "E-mail messages waiting to be sent."}),
	}
	for _, k := range []string{KindWelcome, KindReset} {
		for _, r := range []string{ResultSent, ResultFailed, ResultDropped} {
			o.sent.WithLabelValues(k, r)
		}
	}
	return o, nil
}

// Enqueue queues m without waiting; false (counted as dropped) when the
// queue is full.
func (o *Outbox) Enqueue(m Message) bool {
	select {
	case o.q <- m:
		o.queue.Inc()
		o.log.Debug("mail queued", "kind", m.Kind, "to", m.To)
		return true
	default:
		o.finish(m, ResultDropped, errors.New("queue full"))
		return false
	}
}

// EnqueueWait queues m, waiting while the queue is full, until ctx ends.
// A paced backlog (a CSV import's welcome messages) uses it so that none
// is dropped for want of room.
func (o *Outbox) EnqueueWait(ctx context.Context, m Message) error {
	select {
	case o.q <- m:
		o.queue.Inc()
		o.log.Debug("mail queued", "kind", m.Kind, "to", m.To)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mail queue: %w", ctx.Err())
	}
}

func (o *Outbox) finish(m Message, result string, err error) {
	o.sent.WithLabelValues(m.Kind, result).Inc()
	switch result {
	case ResultSent:
		o.log.Info("mail sent", "kind", m.Kind, "to", m.To, "language", language(m.Language))
	default:
		o.log.Warn("mail not sent", "kind", m.Kind, "to", m.To, "result", result, "err", err)
	}
	if o.done != nil {
		o.done(m, result)
	}
}

// Run sends queued messages until ctx ends; what is still queued then is
// dropped (and counted): the links can be sent again.
func (o *Outbox) Run(ctx context.Context) error {
	o.log.Info("mail outbox started", "server", net.JoinHostPort(o.cfg.Host, strconv.Itoa(o.cfg.Port)), "tls", o.cfg.TLS)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case m := <-o.q:
					o.queue.Dec()
					o.finish(m, ResultDropped, errors.New("outbox stopped"))
				default:
					return nil
				}
			}
		case m := <-o.q:
			o.queue.Dec()
			o.deliver(ctx, m)
		}
	}
}

// deliver renders m and tries it 1+Retries times, waiting RetryBackoff,
// then twice that, … between tries; a permanent refusal (5xx) ends it.
func (o *Outbox) deliver(ctx context.Context, m Message) {
	to, raw, err := o.tpl.render(m, o.from, o.now())
	if err != nil {
		o.finish(m, ResultInvalid, err)
		return
	}
	wait := o.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err = o.send(ctx, to.Address, raw)
		if err == nil {
			o.finish(m, ResultSent, nil)
			return
		}
		if permanent(err) || attempt >= o.cfg.Retries || ctx.Err() != nil {
			o.finish(m, ResultFailed, err)
			return
		}
		o.sent.WithLabelValues(m.Kind, ResultRetry).Inc()
		o.log.Info("mail delivery failed, will retry", "kind", m.Kind, "to", m.To, "attempt", attempt+1,
			"in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			o.finish(m, ResultDropped, ctx.Err())
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// permanent reports a failure that trying again cannot mend: the server
// refused (5xx) or its certificate is not trusted.
func permanent(err error) bool {
	var te *textproto.Error
	var ce *tls.CertificateVerificationError
	return errors.As(err, &te) && te.Code >= 500 || errors.As(err, &ce)
}

// send makes one SMTP transaction.
func (o *Outbox) send(ctx context.Context, to string, raw []byte) error {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(o.cfg.Host, strconv.Itoa(o.cfg.Port))
	var conn net.Conn
	var err error
	if o.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{Config: o.tls}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	// The deadline bounds every read and write; cancelling ctx (shutdown)
	// closes the connection at once.
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, o.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if o.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the server offers no STARTTLS (set mail.tls: none to send in the clear)")
		}
		if err := c.StartTLS(o.tls); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if o.cfg.Username != "" {
		// PlainAuth itself refuses to send the password unencrypted to
		// anything but this host.
		if err := c.Auth(smtp.PlainAuth("", o.cfg.Username, o.cfg.Password, o.cfg.Host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(o.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}
