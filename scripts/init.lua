-- The Lua half of moonspan's API, loaded into every script's globals.
-- span() and trace() are native (host/bind_trace.c); what is written here
-- is what users may want to read or adapt.
retry = require "moonspan.retry"
llm = require "moonspan.llm"
