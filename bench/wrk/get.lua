-- GET the URL given on the command line (status polling: ?session_id=… is in it).
wrk.method = "GET"
