// Package portal serves the admin listener's /api/v1 JSON API and the
// server-rendered browser portal for admins and users, on top of prov's
// services.
package portal
