// Package auth holds the credential primitives every door shares: login
// password hashing (argon2id PHC strings, a Hasher bounding how many run
// at once), digest HA1s and random secrets, the Lockout that refuses keys
// and (account, source) pairs after repeated failures, and per-source
// token buckets (SourceLimits, on golang.org/x/time/rate). It imports no
// other hotdesk package: what a User is stays in prov.
package auth
