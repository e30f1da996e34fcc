"""The web views: staff inbox, staff API, dashboard, interviews, survey page, unsubscribe,
complaint form and health. Views only wire requests to stores and pages."""
