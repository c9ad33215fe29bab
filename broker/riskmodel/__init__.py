"""What is usual for each person and their peers, learned from Airlock's own history.

`features` turns a request into the values the model sees, `baseline` learns how
often each value occurs (per person, per peer group, overall) and scores a new
request by how unlikely its values are, `synthetic` generates an organisation
with injected attacks to measure it, and `store` trains, versions and loads the
model from the database. Only `store` knows Django.
"""
