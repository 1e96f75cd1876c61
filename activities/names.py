"""Activity names as recorded in workflow history. Renaming one breaks running workflows: don't."""

SCREEN_EVENT = "screen_event"
RETRIEVE_CONTEXT = "retrieve_context"
REASON_ABOUT_CASE = "reason_about_case"
EXECUTE_ACTIONS = "execute_actions"
RECORD_CASE = "record_case"
