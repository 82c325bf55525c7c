// Package mail sends hotdesk's e-mail (welcome, password set/reset links)
// through an SMTP server: messages rendered from templates in the
// recipient's language go into a bounded queue that one worker drains,
// retrying a failed delivery a bounded number of times. Nothing that
// enqueues a message waits for the server, and a failure never reaches it:
// it is logged and counted. The package imports no other hotdesk room;
// daemon adapts it to prov's Mailer.
package mail
