package prov

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"hotdesk/prov/auth"
)

// LoginRealm is the HTTP digest realm of the login doors; the users' login
// HA1s are computed for it, so it is fixed.
const LoginRealm = "hotdesk"

// Directory owns users and their numbers: validation, password hashing and
// the all-or-nothing creation that CSV import and the API share.
type Directory struct {
	store  Store
	events *Events
	now    func() time.Time
	hasher *auth.Hasher
	// lockout, when set, limits password-change guesses (New shares the
	// logins' one).
	lockout *auth.Lockout
	// params checks raw "<vendor>:<name>" overrides against that vendor's
	// parameters (prov.New sets it; nil: syntax only).
	params ParamCatalog
}

// NewDirectory returns the user service.
func NewDirectory(st Store, ev *Events, now func() time.Time) *Directory {
	return &Directory{store: st, events: ev, now: now, hasher: auth.NewHasher(auth.DefaultArgon2, 0)}
}

// Hasher is the password hasher every door and the portal share, so the
// bound on parallel argon2id work holds for the whole daemon.
func (d *Directory) Hasher() *auth.Hasher { return d.hasher }

// UserInput is what an admin (or a CSV row) gives to create a user.
type UserInput struct {
	Username         string
	FirstName        string
	LastName         string
	Email            string
	Language         string
	DirectoryScope   string
	Custom1          string
	Custom2          string
	Custom3          string
	Kind             UserKind
	ResponsibleEmail string
	SiteID           int64
	Password         string
	SIPPassword      string
	Numbers          []string
	Portal           *PortalAccess
	// Params are the user's profile parameters (<user>.cfg).
	Params map[string]string
}

var (
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)
	numberRE   = regexp.MustCompile(`^\+?[0-9]{2,15}$`)
)

// ValidNumber reports whether s is an extension or E.164 number.
func ValidNumber(s string) bool { return numberRE.MatchString(s) }

// Prepare validates in and returns the user it describes, hashed and
// defaulted, without storing it. CSV import prepares rows in parallel.
func (d *Directory) Prepare(in UserInput) (User, error) {
	in.Email = strings.TrimSpace(in.Email)
	in.Username = strings.TrimSpace(in.Username)
	if in.Username == "" {
		in.Username = in.Email
	}
	switch {
	case strings.TrimSpace(in.FirstName) == "":
		return User{}, Invalid("first_name", "is required")
	case strings.TrimSpace(in.LastName) == "":
		return User{}, Invalid("last_name", "is required")
	case in.Email == "":
		return User{}, Invalid("email", "is required")
	}
	if a, err := mail.ParseAddress(in.Email); err != nil || a.Address != in.Email {
		return User{}, Invalid("email", "is not a valid address")
	}
	if !usernameRE.MatchString(in.Username) {
		return User{}, Invalid("username", "use 1-64 letters, digits and . _ @ + -")
	}
	if in.Kind == "" {
		in.Kind = KindPerson
	}
	if in.Kind != KindPerson && in.Kind != KindCommonArea {
		return User{}, Invalid("kind", "is person or common_area")
	}
	if in.Kind == KindCommonArea && in.ResponsibleEmail == "" {
		return User{}, Invalid("responsible_email", "is required for a common-area profile")
	}
	for _, n := range in.Numbers {
		if !ValidNumber(n) {
			return User{}, Invalid("numbers", fmt.Sprintf("%q is not an extension or E.164 number", n))
		}
	}
	if err := CheckVendorParams(d.params, "params", in.Params); err != nil {
		return User{}, err
	}
	if err := ValidateParams("params", in.Params, true); err != nil {
		return User{}, err
	}
	if in.Password == "" {
		in.Password = auth.RandomSecret(8)
	}
	if err := CheckPasswordPolicy(in.Password); err != nil {
		return User{}, err
	}
	if in.SIPPassword == "" {
		in.SIPPassword = auth.RandomSecret(10)
	}
	hash, err := d.hasher.Hash(in.Password)
	if err != nil {
		return User{}, err
	}
	now := d.now()
	u := User{
		Username: in.Username, FirstName: strings.TrimSpace(in.FirstName), LastName: strings.TrimSpace(in.LastName),
		Email: in.Email, Language: in.Language, DirectoryScope: in.DirectoryScope,
		Custom1: in.Custom1, Custom2: in.Custom2, Custom3: in.Custom3,
		Kind: in.Kind, ResponsibleEmail: in.ResponsibleEmail, Status: StatusActive, SiteID: in.SiteID,
		PasswordHash: hash, LoginHA1: LoginHA1s(in.Username, in.Password),
		SIPPassword: in.SIPPassword, Params: in.Params,
		Portal:    PortalAccess{Profile: AccessWrite, CallHandling: AccessWrite, Directory: AccessWrite, Buttons: AccessWrite},
		CreatedAt: now, UpdatedAt: now,
	}
	if in.Portal != nil {
		u.Portal = *in.Portal
	}
	return u, nil
}

// CheckPasswordPolicy enforces the login password policy.
func CheckPasswordPolicy(pw string) error {
	if len(pw) < 6 {
		return Invalid("password", "must be at least 6 characters")
	}
	if len(pw) > 128 {
		return Invalid("password", "must be at most 128 characters")
	}
	return nil
}

// CreateUser validates, stores the user and their numbers in one
// transaction, and returns the stored user.
func (d *Directory) CreateUser(ctx context.Context, in UserInput) (User, error) {
	u, err := d.Prepare(in)
	if err != nil {
		return User{}, err
	}
	if err := d.Store(ctx, &u, in.Numbers); err != nil {
		return User{}, err
	}
	d.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID})
	return u, nil
}

// Store writes a prepared user and their numbers all or nothing.
func (d *Directory) Store(ctx context.Context, u *User, numbers []string) error {
	return d.store.WithTx(ctx, func(tx Store) error {
		if err := CheckNamespace(ctx, tx, 0, u.Username, numbers); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("username %q: %w", u.Username, err)
		}
		for _, n := range numbers {
			if err := tx.AssignNumber(ctx, n, u.ID); err != nil {
				return fmt.Errorf("number %q: %w", n, err)
			}
		}
		return nil
	})
}

// PasswordChange is a request to change a user's login password.
type PasswordChange struct {
	Username string
	Old      string
	New      string
	Confirm  string
	// SkipOld: an admin (or a phone upload already authenticated as the
	// user's session) changes it without the old password.
	SkipOld bool
	// Remote is where the request came from: wrong old passwords lock the
	// (user, source) pair, not the user everywhere.
	Remote string
}

// ChangePassword checks the old password and the policy, then replaces
// the argon2id hash and every digest HA1 at once. A wrong old password and
// an unknown user both give ErrAuth.
func (d *Directory) ChangePassword(ctx context.Context, c PasswordChange) (User, error) {
	if c.New != c.Confirm {
		return User{}, Invalid("confirm", "does not match the new password")
	}
	if err := CheckPasswordPolicy(c.New); err != nil {
		return User{}, err
	}
	var done func(bool)
	key, src, now := "user:"+strings.ToLower(c.Username), sourceHost(c.Remote), d.now()
	if !c.SkipOld && d.lockout != nil {
		var ok bool
		if done, ok = d.lockout.TryGuess(key, src, now); !ok {
			return User{}, ErrLocked
		}
		defer done(false)
	}
	fail := func() (User, error) {
		if done != nil {
			done(true)
		}
		return User{}, ErrAuth
	}
	u, err := d.store.GetUser(ctx, c.Username)
	if errors.Is(err, ErrNotFound) {
		if !c.SkipOld {
			// The same argon2id work as for a real user: no enumeration by timing.
			d.hasher.VerifyNobody(c.Old)
		}
		return fail()
	} else if err != nil {
		return User{}, err
	}
	if !c.SkipOld && !d.hasher.Verify(u.PasswordHash, c.Old) {
		return fail()
	}
	if !c.SkipOld && d.lockout != nil {
		d.lockout.GuessSucceeded(key, src, now)
	}
	if u.Status != StatusActive {
		return User{}, ErrAuth
	}
	hash, err := d.hasher.Hash(c.New)
	if err != nil {
		return User{}, err
	}
	u.PasswordHash, u.LoginHA1, u.UpdatedAt = hash, LoginHA1s(u.Username, c.New), d.now()
	if err := d.store.UpdateUser(ctx, &u); err != nil {
		return User{}, fmt.Errorf("change password: %w", err)
	}
	d.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID, Reason: "password"})
	return u, nil
}

// CheckNamespace refuses a user name that is another user's number, and a
// number that is another user's user name: people type either on a phone,
// a SIP user name is either, and one found first would route the other's
// calls and logins. userID is the user being changed (0: a new one). A
// leading "+" is no difference, as a number's SIP user name drops it.
func CheckNamespace(ctx context.Context, st Store, userID int64, username string, numbers []string) error {
	if ValidNumber(username) {
		for _, f := range plusForms(username) {
			if o, err := st.UserByNumber(ctx, f); err == nil && o.ID != userID {
				return &ConflictError{Field: "username", Msg: fmt.Sprintf("is another user's number (%s)", f)}
			} else if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	for _, n := range numbers {
		for _, f := range plusForms(n) {
			if strings.EqualFold(f, username) {
				continue // one's own user name may be one's own number
			}
			if o, err := st.GetUser(ctx, f); err == nil && o.ID != userID {
				return &ConflictError{Field: "numbers", Msg: fmt.Sprintf("%s is another user's user name", n)}
			} else if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// plusForms is s with and without a leading "+".
func plusForms(s string) []string {
	if t, ok := strings.CutPrefix(s, "+"); ok {
		return []string{s, t}
	}
	return []string{s, "+" + s}
}
