// Package store persists hotdesk's domain (prov.Store) in SQLite through
// modernc.org/sqlite, with SQL text written to run unchanged on PostgreSQL.
package store
