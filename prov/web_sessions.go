package prov

import (
	"context"
	"time"
)

// WebSession is one signed-in portal browser as the store keeps it, so
// every node serves it. Key is the hex SHA-256 of the cookie's secret ID:
// a reader of the database cannot present it as a cookie.
type WebSession struct {
	Key     string
	CSRF    string
	Admin   bool
	Name    string
	Created time.Time
	// Seen is written at most once a minute, not on every request.
	Seen time.Time
	// Flash is the one-shot message for the next page.
	Flash     string
	Softphone WebSoftphone
}

// WebSoftphone is the browser softphone's digest account minted for a
// portal session: the HA1s for the SIP realm, never the password.
// Username is "" when none was minted.
type WebSoftphone struct {
	Username  string
	UserID    int64
	Number    string
	HA1MD5    string
	HA1SHA256 string
	Expires   time.Time
}

// WebSessionStore keeps portal sessions.
type WebSessionStore interface {
	// CreateWebSession inserts s; ErrConflict for a taken key.
	CreateWebSession(ctx context.Context, s *WebSession) error
	GetWebSession(ctx context.Context, key string) (WebSession, error)
	// CountWebSessions counts every stored session, expired ones included.
	CountWebSessions(ctx context.Context) (int, error)
	// TouchWebSession records a request at at.
	TouchWebSession(ctx context.Context, key string, at time.Time) error
	// SetWebSessionFlash sets the one-shot message; ClearWebSessionFlash
	// clears it if it is still flash (taken once).
	SetWebSessionFlash(ctx context.Context, key, flash string) error
	ClearWebSessionFlash(ctx context.Context, key, flash string) (bool, error)
	// DeleteWebSession deletes one session and returns it; ErrNotFound
	// when it is gone already (ended on another node).
	DeleteWebSession(ctx context.Context, key string) (WebSession, error)
	// PruneWebSessions deletes and returns the sessions seen before
	// seenBefore or created before createdBefore (expired).
	PruneWebSessions(ctx context.Context, seenBefore, createdBefore time.Time) ([]WebSession, error)
	// DeleteOldestWebSession deletes and returns the least recently seen
	// session; ErrNotFound when there is none.
	DeleteOldestWebSession(ctx context.Context) (WebSession, error)
	// DeleteUserWebSessions deletes and returns a user's (not an admin's)
	// sessions named name, but keep's.
	DeleteUserWebSessions(ctx context.Context, name, keep string) ([]WebSession, error)
	// SetWebSoftphone sets (replaces) the session's softphone account;
	// ErrNotFound when the session is gone.
	SetWebSoftphone(ctx context.Context, key string, sp WebSoftphone) error
	// ClearWebSoftphones drops the softphone accounts minted for a user's
	// sessions and returns the sessions that had one.
	ClearWebSoftphones(ctx context.Context, userID int64) ([]WebSession, error)
	// ListWebSoftphones returns the sessions with a softphone account
	// that has not expired at now.
	ListWebSoftphones(ctx context.Context, now time.Time) ([]WebSession, error)
}
