package prov

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"hotdesk/prov/auth"
)

// Purposes of a password link, and the kinds of message that carry one.
const (
	LinkWelcome = "welcome"
	LinkReset   = "reset"
)

// PasswordPath is the portal page a password link opens.
const PasswordPath = "/password"

// Why a password link does not work; the portal says which.
var (
	ErrLinkInvalid = errors.New("password link is not valid")
	ErrLinkUsed    = errors.New("password link has been used")
	ErrLinkExpired = errors.New("password link has expired")
	// ErrNoEmail: the user has no e-mail address to send a link to.
	ErrNoEmail = errors.New("the user has no e-mail address")
	// ErrMailOff: no mail server is configured.
	ErrMailOff = errors.New("e-mail is not configured")
)

// Mail is one message for the outbox: a password link for a user.
type Mail struct {
	Kind     string // LinkWelcome or LinkReset
	To       string
	Language string
	Name     string
	Username string
	Link     string
	Expires  time.Time
}

// Mailer queues messages; it never waits for the mail server. Enqueue
// reports false when the message was not queued (the queue is full);
// EnqueueWait waits for room until ctx ends.
type Mailer interface {
	Enqueue(m Mail) bool
	EnqueueWait(ctx context.Context, m Mail) error
}

// LinksConfig says where links point and how long they work.
type LinksConfig struct {
	// BaseURL is the portal's public address ("https://pbx.example.com").
	BaseURL    string
	WelcomeTTL time.Duration
	ResetTTL   time.Duration
	// ImportRate paces an import's welcome messages (per second); 0 = 5.
	ImportRate float64
}

// PasswordLinks sends single-use, expiring links that set a user's
// password: welcome for a new user, reset on an admin's or the user's
// request. A nil Mailer means mail is off: sending is refused (ErrMailOff)
// but links already sent still work.
type PasswordLinks struct {
	cfg    LinksConfig
	store  Store
	dir    *Directory
	events *Events
	mailer Mailer
	audit  func(ctx context.Context, a Actor, action, object string)
	logger *slog.Logger
	now    func() time.Time

	// forgot is one token per user and ForgotInterval: many sources asking
	// for one user's reset must not flood their inbox.
	forgot *auth.SourceLimits
	mu     sync.Mutex

	// Forgot-password requests are worked off the request path (ForgotLater)
	// so that the answer takes as long whether the account exists or not;
	// slots bounds them, wg lets Close wait for them.
	slots  chan struct{}
	wg     sync.WaitGroup
	closed bool

	// backlog holds the users an import asked to welcome, sent one at a
	// time at pace by a worker that runs while it is not empty (welcoming
	// tells whether it does); stop ends it on Close.
	backlog   []welcomeJob
	welcoming bool
	pace      *rate.Limiter
	stopCtx   context.Context
	stop      context.CancelFunc
	mBacklog  prometheus.Gauge
	mImport   *prometheus.CounterVec
}

type welcomeJob struct {
	username string
	actor    Actor
}

// maxWelcomeBacklog bounds the import welcome backlog (two full imports).
const maxWelcomeBacklog = 2 * DefaultImportMaxRows

// Results counted by hotdesk_mail_import_welcome_total.
const (
	WelcomeQueued  = "queued"  // handed to the outbox (its own metric counts delivery)
	WelcomeSkipped = "skipped" // the user has no address, or was disabled or removed meanwhile
	WelcomeFailed  = "failed"  // the link could not be made (store error)
	WelcomeDropped = "dropped" // the backlog was full, or the daemon stopped first
)

// forgotSlots bounds the forgot-password requests worked at once; more
// are dropped like rate-limited ones.
const forgotSlots = 16

// ForgotInterval is the least time between two forgot-password links to
// one user; requests in between are answered alike and send nothing.
const ForgotInterval = time.Minute

// PasswordLinksDeps are PasswordLinks' collaborators.
type PasswordLinksDeps struct {
	Store      Store
	Directory  *Directory
	Events     *Events
	Mailer     Mailer // nil: mail off
	Manager    *Manager
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// NewPasswordLinks returns the service.
func NewPasswordLinks(cfg LinksConfig, d PasswordLinksDeps) *PasswordLinks {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WelcomeTTL <= 0 {
		cfg.WelcomeTTL = 7 * 24 * time.Hour
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = time.Hour
	}
	if cfg.ImportRate <= 0 {
		cfg.ImportRate = 5
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	f := promauto.With(d.Registerer)
	stopCtx, stop := context.WithCancel(context.Background())
	p := &PasswordLinks{cfg: cfg, store: d.Store, dir: d.Directory, events: d.Events, mailer: d.Mailer,
		logger: d.Logger.With("component", "password-links"), now: d.Now, forgot: auth.NewSourceLimits(rate.Every(ForgotInterval), 1),
		slots: make(chan struct{}, forgotSlots), pace: rate.NewLimiter(rate.Limit(cfg.ImportRate), 1),
		stopCtx: stopCtx, stop: stop,
		mBacklog: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_mail_import_backlog",
			Help: "Welcome messages of CSV imports waiting to enter the mail queue."}),
		mImport: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_mail_import_welcome_total",
			Help: "Welcome messages of CSV imports by result (queued, skipped, failed, dropped)."}, []string{"result"}),
	}
	for _, r := range []string{WelcomeQueued, WelcomeSkipped, WelcomeFailed, WelcomeDropped} {
		p.mImport.WithLabelValues(r)
	}
	if d.Manager != nil {
		p.audit = func(ctx context.Context, a Actor, action, object string) {
			d.Manager.Audit(ctx, a, action, object, nil, nil)
		}
	}
	return p
}

// Enabled reports whether links can be sent.
func (p *PasswordLinks) Enabled() bool { return p != nil && p.mailer != nil }

func hashLink(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// send makes a link for u and queues the message. The caller's action
// (creating the user, the admin's request) is done whatever happens here.
func (p *PasswordLinks) send(ctx context.Context, u User, purpose string, a Actor) error {
	return p.sendMode(ctx, u, purpose, a, false)
}

// sendMode is send; wait makes it wait for room in the mail queue.
func (p *PasswordLinks) sendMode(ctx context.Context, u User, purpose string, a Actor, wait bool) error {
	if !p.Enabled() {
		return ErrMailOff
	}
	if strings.TrimSpace(u.Email) == "" {
		return ErrNoEmail
	}
	ttl := p.cfg.ResetTTL
	if purpose == LinkWelcome {
		ttl = p.cfg.WelcomeTTL
	}
	now := p.now()
	secret := auth.RandomSecret(32)
	t := &PasswordToken{UserID: u.ID, Hash: hashLink(secret), Purpose: purpose, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := p.store.CreatePasswordToken(ctx, t); err != nil {
		return fmt.Errorf("password link for %s: %w", u.Username, err)
	}
	link := strings.TrimRight(p.cfg.BaseURL, "/") + PasswordPath + "?token=" + url.QueryEscape(secret)
	m := Mail{Kind: purpose, To: u.Email, Language: u.Language, Name: strings.TrimSpace(u.FirstName + " " + u.LastName),
		Username: u.Username, Link: link, Expires: t.ExpiresAt}
	if wait {
		if err := p.mailer.EnqueueWait(ctx, m); err != nil {
			return fmt.Errorf("password link for %s: %w", u.Username, err)
		}
	} else if !p.mailer.Enqueue(m) {
		return fmt.Errorf("password link for %s: the mail queue is full", u.Username)
	}
	if p.audit != nil {
		p.audit(ctx, a, "user.password_link_"+purpose, "user:"+u.Username)
	}
	return nil
}

// Welcome sends a new user their welcome message with a link to set their
// password, when mail is on and they have an e-mail address; otherwise it
// does nothing. Errors are logged, never returned: the user exists.
func (p *PasswordLinks) Welcome(ctx context.Context, u User, a Actor) {
	if !p.Enabled() || strings.TrimSpace(u.Email) == "" {
		return
	}
	if err := p.send(ctx, u, LinkWelcome, a); err != nil {
		p.logger.Warn("welcome message not queued", "user", u.Username, "err", err)
	}
}

// SendReset sends the user a password reset link on an admin's request.
// ErrMailOff, ErrNoEmail, ErrNotFound and ErrDisabled say why not.
func (p *PasswordLinks) SendReset(ctx context.Context, username string, a Actor) error {
	if !p.Enabled() {
		return ErrMailOff
	}
	u, err := p.store.GetUser(ctx, username)
	if err != nil {
		return err
	}
	if u.Status != StatusActive {
		return ErrDisabled
	}
	return p.send(ctx, u, LinkReset, a)
}

// Forgot sends a reset link to the active user whose user name or e-mail
// address is login, if there is one. It says nothing of whether there
// was: the portal answers the same either way.
func (p *PasswordLinks) Forgot(ctx context.Context, login, remote string) {
	login = strings.TrimSpace(login)
	if !p.Enabled() || login == "" || len(login) > 254 {
		return
	}
	u, err := p.findUser(ctx, login)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			p.logger.Error("forgot password: lookup failed", "err", err)
		}
		return
	}
	if u.Status != StatusActive || u.Email == "" || !p.forgotAllowed(u.ID) {
		return
	}
	if err := p.send(ctx, u, LinkReset, Actor{Name: "user:" + u.Username, Remote: remote}); err != nil {
		p.logger.Warn("forgot password: link not sent", "user", u.Username, "err", err)
	}
}

// ForgotLater does Forgot in the background and returns at once, so the
// time the answer takes tells nothing either. Close waits for it.
func (p *PasswordLinks) ForgotLater(ctx context.Context, login, remote string) {
	if !p.Enabled() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.logger.Warn("forgot password: too many requests at once; dropped", "remote", remote)
		return
	}
	p.wg.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	go func() {
		defer func() { cancel(); <-p.slots; p.wg.Done() }()
		p.Forgot(ctx, login, remote)
	}()
}

// Wait waits for the forgot-password requests being worked now.
func (p *PasswordLinks) Wait() { p.wg.Wait() }

// Close refuses further forgot-password requests and waits for the ones
// still being worked.
func (p *PasswordLinks) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop() // the welcome worker drops (and counts) what is left
	p.wg.Wait()
	return nil
}

// findUser takes a user name, else an e-mail address matching exactly one user.
func (p *PasswordLinks) findUser(ctx context.Context, login string) (User, error) {
	u, err := p.store.GetUser(ctx, login)
	if err == nil || !errors.Is(err, ErrNotFound) || !strings.Contains(login, "@") {
		return u, err
	}
	us, _, err := p.store.ListUsers(ctx, UserQuery{Search: login, Limit: 50})
	if err != nil {
		return User{}, err
	}
	var found []User
	for _, c := range us {
		if strings.EqualFold(c.Email, login) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		// None, or a shared address: which account is meant is unknown.
		return User{}, ErrNotFound
	}
	return found[0], nil
}

// Check returns the user a link sets the password of, or why it does not
// work (ErrLinkInvalid, ErrLinkUsed, ErrLinkExpired).
func (p *PasswordLinks) Check(ctx context.Context, secret string) (User, PasswordToken, error) {
	if secret == "" || len(secret) > 128 {
		return User{}, PasswordToken{}, ErrLinkInvalid
	}
	t, err := p.store.PasswordTokenByHash(ctx, hashLink(secret))
	if errors.Is(err, ErrNotFound) {
		return User{}, PasswordToken{}, ErrLinkInvalid
	} else if err != nil {
		return User{}, PasswordToken{}, err
	}
	switch {
	case !t.UsedAt.IsZero():
		return User{}, t, ErrLinkUsed
	case !p.now().Before(t.ExpiresAt):
		return User{}, t, ErrLinkExpired
	}
	u, err := p.store.GetUserByID(ctx, t.UserID)
	if err != nil {
		return User{}, t, err
	}
	if u.Status != StatusActive {
		return User{}, t, ErrLinkInvalid
	}
	return u, t, nil
}

// SetPassword spends the link and sets the user's password (the policy
// applies); every other link of the user is spent too. The caller ends the
// user's portal sessions.
func (p *PasswordLinks) SetPassword(ctx context.Context, secret, pw, confirm, remote string) (User, error) {
	u, t, err := p.Check(ctx, secret)
	if err != nil {
		return User{}, err
	}
	if pw != confirm {
		return User{}, Invalid("confirm", "does not match the new password")
	}
	if err := CheckPasswordPolicy(pw); err != nil {
		return User{}, err
	}
	hash, err := p.dir.hasher.Hash(pw)
	if err != nil {
		return User{}, err
	}
	now := p.now()
	err = p.store.WithTx(ctx, func(tx Store) error {
		if err := tx.UsePasswordToken(ctx, t.ID, now); errors.Is(err, ErrNotFound) {
			return ErrLinkUsed // spent (or expired) by a racing request
		} else if err != nil {
			return err
		}
		if err := tx.SpendPasswordTokens(ctx, u.ID, now); err != nil {
			return err
		}
		cur, err := tx.GetUserByID(ctx, u.ID)
		if err != nil {
			return err
		}
		cur.PasswordHash, cur.LoginHA1, cur.UpdatedAt = hash, LoginHA1s(cur.Username, pw), now
		u = cur
		return tx.UpdateUser(ctx, &cur)
	})
	if err != nil {
		return User{}, err
	}
	p.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: "password"})
	if p.audit != nil {
		p.audit(ctx, Actor{Name: "user:" + u.Username, Remote: remote}, "user.password_set_by_link", "user:"+u.Username)
	}
	p.logger.Info("password set by link", "user", u.Username, "purpose", t.Purpose)
	return u, nil
}

// forgotAllowed reports whether a forgot-password link may go to the user
// now (one per ForgotInterval), and if so takes that user's token.
func (p *PasswordLinks) forgotAllowed(userID int64) bool {
	if !p.forgot.Allow(strconv.FormatInt(userID, 10), p.now()) {
		p.logger.Info("forgot password: link sent to this user moments ago; none sent", "user_id", userID)
		return false
	}
	return true
}
