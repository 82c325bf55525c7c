package store_test

import (
	"testing"

	"hotdesk/prov/store/pgtest"
)

// postgresDSN returns a PostgreSQL for the test (pgtest.Server); "" when
// none can be had.
func postgresDSN(t *testing.T) string { return pgtest.Server(t, 0) }
